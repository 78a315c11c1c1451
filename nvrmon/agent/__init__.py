"""Agent side: processes that speak protocol v1 to the hub (the simulated fleet; the device prober)."""
