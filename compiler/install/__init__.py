"""Installing a generated tree: plan, apply, generations and the calls to systemctl."""
