"""The physical tax hall: halls, devices, live status, appointments, comfort index, guides."""
