"""SimPy discrete-event model of the end-cloud split (devices, links with radio power states, cloud
queues with batching), reading device profiles measured by ``edgesplit device bench``."""
