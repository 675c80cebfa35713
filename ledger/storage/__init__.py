"""Storage: the one place that talks to the database. The domain never imports it."""
