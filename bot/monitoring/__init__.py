"""Post-cutover monitoring: signals from Prometheus and the bot, windows, alerts, leader election."""
