"""The digest: choose the next issue, render it once, preflight it, write the archive pages."""
