"""Setting a host up: systemd units for the timers, and the self-contained demo."""
