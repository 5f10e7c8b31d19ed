"""Operating sahab: supervision, backups and restores, upgrades, metrics, health, logs."""
