

app 
docker.io/library/busybox:1.36/bin/sh"-c"
sleep 3600*/work2
PATH/bin2
Ab=c:
/data/var/lib/dataB
	/dev/fuse	/dev/fuserwmJ#
io.kubernetes.container.nameappZ	app/2.log`pz%
€ €€€ (ô

	NET_ADMINALL8X