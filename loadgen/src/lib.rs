//! The `tierlab` swarm: scenarios, topology, virtual players, faults and the delivery checker. Built out by its own issue.
