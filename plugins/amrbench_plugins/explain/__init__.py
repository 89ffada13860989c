"""The explain family: its protocol, its plugins (one file each) and their shared machinery."""
