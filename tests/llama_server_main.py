"""``python tests/llama_server_main.py ARGS``: llama-cpp-python's OpenAI-compatible server,
loaded the way slmbench loads a GGUF (``extra_bufts=auto``: no AMX weight buffers, which
crash in decode), so the server tests run on every CPU."""

from __future__ import annotations

import sys

from slmbench.models.llamacpp import model_params, use_extra_bufts

if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    with model_params(use_extra_bufts("auto")):
        sys.argv[0] = "llama_cpp.server"
        main()
