"""convostore: a self-hosted server for the OpenAI Conversations API."""

__version__ = "0.1.0"
