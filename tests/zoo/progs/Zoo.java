// Zoo.java - a JVM for the zoo: a warm class (a HashMap of 100000 entries,
// the lambda and the pool's code run before "ready") and a fixed pool of 4
// threads; then one answer per line of stdin, computed by a pool thread:
//   K  ->  "answer K 19K 100000 pool=4"
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadPoolExecutor;

public class Zoo {
	public static void main(String[] args) throws Exception {
		ExecutorService pool = Executors.newFixedThreadPool(4);
		Map<Integer, Long> h = new HashMap<>();
		for (int i = 0; i < 100000; i++)
			h.put(i, 19L * i);
		((ThreadPoolExecutor)pool).prestartAllCoreThreads();
		for (int i = 0; i < 1000; i++) {   // warm the path of an answer
			final int k = i;
			pool.submit(() -> h.get(k)).get();
		}
		System.out.println("ready");
		System.out.flush();
		BufferedReader r = new BufferedReader(new InputStreamReader(System.in));
		String l;
		while ((l = r.readLine()) != null) {
			final int k = Integer.parseInt(l.trim());
			long v = pool.submit(() -> h.get(k)).get();
			System.out.println("answer " + k + " " + v + " " + h.size() + " pool="
					   + ((ThreadPoolExecutor)pool).getPoolSize());
			System.out.flush();
		}
		System.out.println("eof");
		pool.shutdown();
	}
}
