# SPDX-License-Identifier: MIT
# zoo.bash - bash for the zoo: an associative array of 20000 entries before
# "ready"; then  K  ->  "answer K 17K 20000"
declare -A h
for ((i = 0; i < 20000; i++)); do h[$i]=$((17 * i)); done
echo ready
while read -r k; do
	echo "answer $k ${h[$k]} ${#h[@]}"
done
echo eof
