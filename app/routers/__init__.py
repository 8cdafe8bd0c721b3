"""Thin HTTP and websocket endpoints, a module per resource."""
