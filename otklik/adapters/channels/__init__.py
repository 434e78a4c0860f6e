"""Channel adapters: each turns its provider's updates into `InboundEvent`s and sends `OutboundMessage`s."""
