# zoo.awk - gawk for the zoo: an array of 100000 entries before "ready"; then
#   K  ->  "answer K 7K 100000"
BEGIN { for (i = 0; i < 100000; i++) h[i] = 7 * i; print "ready"; fflush() }
{ print "answer", $1, h[$1], length(h); fflush() }
END { print "eof" }
