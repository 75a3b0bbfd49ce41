"""Storage: the :class:`~convostore.store.base.Store` protocol and its backends."""
