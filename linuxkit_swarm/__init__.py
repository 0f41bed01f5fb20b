"""Pure logic of linuxkit-swarm: settings, naming, rendering, hashing, guestinfo.

Nothing in this package registers Pulumi resources; the components in
``components/`` do that with the values computed here.
"""
