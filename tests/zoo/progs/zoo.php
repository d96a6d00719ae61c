<?php
// zoo.php - php-cli for the zoo: an array of 100000 entries before "ready";
// then one answer per line of stdin (fgets):  K  ->  "answer K 31K 100000"
$h = [];
for ($i = 0; $i < 100000; $i++)
	$h[$i] = 31 * $i;
echo "ready\n";
while (($l = fgets(STDIN)) !== false) {
	$k = (int)trim($l);
	echo "answer $k {$h[$k]} " . count($h) . "\n";
}
echo "eof\n";
