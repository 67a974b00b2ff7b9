"""The taskwire.v1 contracts, generated from proto/taskwire/v1 (npm run generate:python copies them here)."""
