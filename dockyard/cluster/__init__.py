"""Swarm cluster state (layer 9): the typed store over etcd (``etcdstore``) or memory
(``memstore``). Later: the manager (orchestrator, scheduler, allocator, dispatcher) and the agent.

``cluster`` never imports ``dockyard.engine``; the daemon adapts one to the other.
"""
