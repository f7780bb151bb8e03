

hostukube-systemB2

0
kernel.hostnamex
	../../etcy