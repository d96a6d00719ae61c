# zoo.tcl - tclsh for the zoo: an array of 100000 entries before "ready";
# then one answer per line of stdin (gets):  K  ->  "answer K 23K 100000"
fconfigure stdout -buffering line
for {set i 0} {$i < 100000} {incr i} { set h($i) [expr {23 * $i}] }
puts ready
while {[gets stdin l] >= 0} {
	set k [string trim $l]
	puts "answer $k $h($k) [array size h]"
}
puts eof
