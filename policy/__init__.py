"""linuxkit-swarm's Pulumi policy pack: ``rules`` holds the checks, ``__main__`` the pack."""
