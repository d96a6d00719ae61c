# zoo.rb - ruby for the zoo: a hash of 100000 entries and 2 worker threads
# (Ruby threads are kernel threads) before "ready"; then one answer per
# line of stdin, computed by a worker:  K  ->  "answer K 29K 100000 workers=2"
$stdout.sync = true
h = {}
100000.times { |i| h[i] = 29 * i }
jobs = Queue.new
answers = Queue.new
workers = 2.times.map do
	Thread.new do
		while (k = jobs.pop)
			answers << "answer #{k} #{h[k]} #{h.size}"
		end
	end
end
1000.times { |i| jobs << i; answers.pop }   # warm the path of an answer
puts "ready"
$stdin.each_line do |l|
	jobs << Integer(l.strip)
	puts "#{answers.pop} workers=#{workers.count(&:alive?)}"
end
puts "eof"
