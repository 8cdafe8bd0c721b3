"""The behaviour of the service; routers call these, these call models and schemas."""
