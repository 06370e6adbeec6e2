"""One module per group of routes; `gateway.app` mounts them."""
