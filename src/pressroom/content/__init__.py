"""Content: article sources, normalisation into ``Article``s, URL and text policies, safe HTML."""
