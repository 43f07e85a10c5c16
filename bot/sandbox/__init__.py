"""The sandbox: a local WeCom on 127.0.0.1 that the service cannot tell from the real one."""
