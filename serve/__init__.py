"""FastAPI scoring service for the credit-risk model (see serve.app.create_app)."""
