"""Pydantic request and response models, a module per resource."""
