"""Evidence adapters: each turns one kind of outside evidence into `Observation`s."""
