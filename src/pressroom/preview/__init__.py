"""Preview: an issue as files (.html, .txt, .eml) and the live preview server on 127.0.0.1."""
