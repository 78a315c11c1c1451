"""Store: the one owner of database connections; all SQL of the fleet and of the security tables."""
