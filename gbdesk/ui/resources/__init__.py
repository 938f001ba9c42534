"""Package data: icons (SVG) and the style sheet, copied from the repository's resources/."""
