"""Downloads from the Hugging Face Hub (resumable, verified) and the local model library.

The GUI and the CLI use :class:`~gbdesk.download.manager.DownloadManager` (a queue of
:class:`~gbdesk.download.job.DownloadJob`) and :class:`~gbdesk.download.library.ModelLibrary`.
"""
