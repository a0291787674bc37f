"""Deferrable triggers: one polling base, small subclasses per resource."""
