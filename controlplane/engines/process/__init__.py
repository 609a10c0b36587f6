"""The process adapter: engines started by a command line (vLLM, SGLang, TGI, the reference
engine as a process), changed by blue/green restarts behind a real HAProxy."""

from controlplane.engines.process.adapter import ProcessAdapter
from controlplane.engines.process.adapter import process_adapter
from controlplane.engines.process.supervisor import ProcessSpec
from controlplane.engines.process.supervisor import Supervisor

__all__ = ["ProcessAdapter", "ProcessSpec", "Supervisor", "process_adapter"]
