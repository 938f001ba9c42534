"""The model catalogue: which GGUF models and quantizations gbdesk knows, and their figures."""

from gbdesk.catalog.loader import Catalog, CatalogError, load_catalog, user_catalog_path
from gbdesk.catalog.model import Architecture, CatalogEntry, Quant

__all__ = [
    "Architecture",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "Quant",
    "load_catalog",
    "user_catalog_path",
]
