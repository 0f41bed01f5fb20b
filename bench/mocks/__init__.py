"""Program overhead under Pulumi mocks: the real program against a bare replay of its registrations.

``python -m bench.mocks.overhead --workers 10 100 500 1000 --runs 3 --out overhead.json``
"""
