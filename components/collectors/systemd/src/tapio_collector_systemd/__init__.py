"""systemd collector."""
