"""Networks: IPAM, network/endpoint records and the bridge driver (layer 6)."""
