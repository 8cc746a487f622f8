"""Items: what names one (its key and uid), finding the one a person means, and changing
its state."""
