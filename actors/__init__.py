"""pykka actors: the supervisor, one actor per running task, the callback sender and the reservation registry."""
