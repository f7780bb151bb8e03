

bad
x2vZ../../../etc/shadow