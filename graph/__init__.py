"""Property graph of customers, policies, vehicles, addresses, visitors and attractions."""
