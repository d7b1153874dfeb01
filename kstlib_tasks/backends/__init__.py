"""Backends run sessions: tmux for development, a Podman/Docker container for production."""
