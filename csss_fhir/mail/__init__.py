"""mail: e-mail messages, the outbox they wait in, and the backends that deliver them."""
