/* version.c: the protocol revision this layer speaks. */
#include "socketio.h"

int sio_protocol_version(void);
int sio_protocol_version(void)
{
	return 5;
}
