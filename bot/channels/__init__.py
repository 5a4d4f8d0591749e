"""Channel adapters: each turns platform traffic into `Inbound` and outbox rows into output."""
