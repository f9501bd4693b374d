"""Cloud half of edgesplit: an Open Inference Protocol (KServe v2) service on FastAPI + ORT."""
