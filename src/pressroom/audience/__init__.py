"""The audience: subscriber files, imports and exports, signed reader tokens."""
