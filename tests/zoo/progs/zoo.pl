# zoo.pl - perl for the zoo: a hash of 100000 entries before "ready"; then
#   K  ->  "answer K 5K 100000"
$| = 1;
my %h = map { $_ => 5 * $_ } 0 .. 99999;
print "ready\n";
while (my $l = <STDIN>) {
	chomp $l;
	print "answer $l $h{$l} ", scalar(keys %h), "\n";
}
print "eof\n";
